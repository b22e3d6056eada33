// The one map: offline vector layers from the registry (district outlines, roads,
// cameras clustered with supercluster) and, when the operator configured one, their own
// XYZ tile server underneath. Nothing is fetched from outside the node otherwise.
import L from 'leaflet';
import Supercluster from 'supercluster';
import { getJson } from './api.js';
import { t } from './i18n.js';
import { textElement } from './ui.js';

export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2',
  '#17becf', '#bcbd22', '#7f7f7f', '#d62728'];

let map;
let renderer;
let cameraLayer;
let clusters;
let basemap;
const positions = new Map();

/** The Leaflet map (made on first use). */
export function theMap() {
  if (!map) {
    renderer = L.canvas({ padding: 0.3 });
    map = L.map('map', {
      preferCanvas: true,
      renderer,
      zoomControl: true,
      attributionControl: false,
      keyboard: true,
      minZoom: 8,
      maxZoom: 19,
      zoomSnap: 0.5,
    }).setView([22.6, 114.1], 11);
    L.control.scale({ imperial: false }).addTo(map);
    map.createPane('districts').style.zIndex = 350;
    map.createPane('roads').style.zIndex = 360;
    map.createPane('cameras').style.zIndex = 370;
    window.camtrailMap = map;
  }
  return map;
}

export function canvasRenderer() {
  theMap();
  return renderer;
}

/** (lat, lon) of a camera by id, once the base map is loaded. */
export function cameraPosition(id) {
  return positions.get(id);
}

/** Load and draw the base map; resolves with its counts. */
export async function loadBasemap(tileUrl) {
  const m = theMap();
  if (tileUrl) L.tileLayer(tileUrl, { maxZoom: 19, crossOrigin: false }).addTo(m);
  basemap = await getJson('v1/basemap');
  const districtRenderer = L.canvas({ pane: 'districts', padding: 0.3 });
  const bounds = L.latLngBounds([]);
  basemap.districts.forEach((district, index) => {
    if (district.hull.length < 3) return;
    const polygon = L.polygon(district.hull, {
      renderer: districtRenderer,
      color: '#8a8aa0',
      weight: 1,
      dashArray: '6 4',
      fillColor: PALETTE[index % PALETTE.length],
      fillOpacity: 0.05,
      interactive: false,
    }).addTo(m);
    bounds.extend(polygon.getBounds());
    L.tooltip({ permanent: true, direction: 'center', className: 'district-label', interactive: false })
      .setLatLng(district.center).setContent(textElement(district.name)).addTo(m);
  });
  const roadRenderer = L.canvas({ pane: 'roads', padding: 0.3 });
  const roads = L.layerGroup();
  for (const road of basemap.roads) {
    L.polyline(road.points, { renderer: roadRenderer, color: '#d8d2c4', weight: 2, interactive: false }).addTo(roads);
  }
  const showRoads = () => {
    if (m.getZoom() >= 12) roads.addTo(m);
    else roads.remove();
  };
  m.on('zoomend', showRoads);
  showRoads();
  const cams = basemap.cameras;
  const features = new Array(cams.ids.length);
  for (let i = 0; i < cams.ids.length; i += 1) {
    positions.set(cams.ids[i], [cams.lat[i], cams.lon[i]]);
    features[i] = { type: 'Feature', properties: { i }, geometry: { type: 'Point', coordinates: [cams.lon[i], cams.lat[i]] } };
  }
  if (bounds.isValid()) m.fitBounds(bounds, { animate: false });
  // Index the cameras off the critical path: the map is usable meanwhile.
  await new Promise((resolve) => { setTimeout(resolve, 0); });
  clusters = new Supercluster({ radius: 72, maxZoom: 16, minPoints: 3 });
  clusters.load(features);
  const cameraRenderer = L.canvas({ pane: 'cameras', padding: 0.3 });
  cameraLayer = L.layerGroup().addTo(m);
  const redraw = () => drawCameras(cameraRenderer);
  m.on('moveend', redraw);
  redraw();
  return { cameras: cams.ids.length, districts: basemap.districts.length, roads: basemap.roads.length };
}

function drawCameras(cameraRenderer) {
  const m = theMap();
  const b = m.getBounds().pad(0.2);
  const zoom = Math.floor(m.getZoom());
  const items = clusters.getClusters([b.getWest(), b.getSouth(), b.getEast(), b.getNorth()], zoom);
  cameraLayer.clearLayers();
  for (const item of items) {
    const [lon, lat] = item.geometry.coordinates;
    if (item.properties.cluster) {
      const count = item.properties.point_count;
      const size = count < 100 ? 'small' : count < 1000 ? 'medium' : 'large';
      L.marker([lat, lon], {
        pane: 'cameras',
        keyboard: false,
        icon: L.divIcon({
          className: `cluster cluster-${size}`,
          html: `<span>${count >= 1000 ? `${Math.round(count / 100) / 10}k` : count}</span>`,
          iconSize: null,
        }),
      }).on('click', () => m.setView([lat, lon], Math.min(clusters.getClusterExpansionZoom(item.properties.cluster_id), 18)))
        .addTo(cameraLayer);
    } else {
      const id = basemap.cameras.ids[item.properties.i];
      L.circleMarker([lat, lon], { renderer: cameraRenderer, radius: 3, color: '#777', weight: 1, fillColor: '#bbb', fillOpacity: 1 })
        .bindTooltip(textElement(`${t('camera')} ${id}`)).addTo(cameraLayer);
    }
  }
  m.getContainer().dataset.cameraItems = String(items.length);
}
